"""Images that are already in Slack: a message's files (a shortcut names them) and a user's profile photo.

Example:
    data = download(file, settings)                    # url_private, with the bot token, from Slack's file hosts
    data = profile_photo(client, "U123", settings)     # users.profile.get, then the photo from Slack's avatar hosts

Both go through the one SSRF-safe intake (layers.edge.intake: address checks, size, deadline), restricted
to Slack's hosts at every hop: the bot token is sent to SLACK_FILE_HOSTS (files.slack.com) and nowhere
else, so a file whose url_private points elsewhere, or redirects elsewhere, is refused before any byte
moves. The caller then decodes the bytes under the pixel and type limits, as for any other image.
"""
from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from layers.config import Settings
from layers.edge.intake import fetch_image
from layers.errors import BadInput, Unavailable
from layers.slack.interactions import SlackFile

PHOTO_SIZES = ("image_512", "image_192", "image_original", "image_1024", "image_72")


def download(file: SlackFile, settings: Settings) -> bytes:
    if not file.is_image:
        raise BadInput(f"{file.name or 'that file'} is not an image ({file.mimetype or 'no type'})")
    if not settings.slack.bot_token:
        raise Unavailable("this app has no bot token (secret slack-bot-token), so it cannot read Slack's files")
    return fetch_image(file.url_private, settings.fetch, hosts=settings.slack.file_hosts,
                       headers={"Authorization": f"Bearer {settings.slack.bot_token}"})


def images_of(files: list[SlackFile]) -> list[SlackFile]:
    """The image files among a message's files; none is a clear error, not a silent nothing."""
    found = [f for f in files if f.is_image]
    if not found:
        raise BadInput("that message has no image to look at")
    return found


def profile_photo(client: WebClient | None, user_id: str, settings: Settings) -> bytes:
    """The user's Slack profile photo (users.profile.get, scope users.profile:read), largest first."""
    if client is None:
        raise Unavailable("this app has no bot token (secret slack-bot-token), so it cannot read profiles")
    try:
        profile = client.users_profile_get(user=user_id)["profile"] or {}
    except SlackApiError as err:
        raise Unavailable(f"Slack did not give the profile: {err.response.get('error', 'error')}") from err
    url = next((profile[k] for k in PHOTO_SIZES if profile.get(k)), None)
    if not url:
        raise BadInput("your Slack profile has no photo; sign up with a photo URL instead")
    return fetch_image(url, settings.fetch, hosts=settings.slack.avatar_hosts)
