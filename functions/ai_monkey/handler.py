"""ai-monkey: the AI Monkey Slack app's interactivity and event request URL (slack/ai-monkey.manifest.yml).

    message shortcut classify_image  "Classify this image": each image of the message, scored as /predict
                                     does; the answer goes to the channel (response_url)
    message shortcut correct_image   "Correct this image": a modal offering the classes (views.open)
    view_submission correct_image    the modal's choice: one vote on that image (once per submitted view),
                                     its receipt sent to the voter by the app
    block_actions vote:<class>       a vote button under an unsure answer (as /function/fix takes them)
    event app_home_opened            the Home tab (views.publish): the live version, the canary, your votes
    url_verification                 answered with its challenge
Every request is signed by Slack and accepted once. Shared images are read with the bot token (files:read)
from Slack's file hosts only, through the same intake as any image URL.
    GET /function/ai-monkey          what this URL takes (plain JSON)
"""
from layers.edge.http import ok
from layers.errors import Unavailable
from layers.slack import is_slack
from layers.slack.blocks import combined, predict_message
from layers.slack.files import download, images_of
from layers.slack.shortcuts import CLASSIFY, CORRECT, correction_modal
from layers.slack.votes import button_vote, correction_vote
from layers.wiring import Wiring

W = Wiring.for_function("ai-monkey")
PREDICTOR, RECORDER, HOME = W.predictor(), W.recorder(), W.app_home()
SLACK = W.slack("AI Monkey", "a shortcut on a shared image, or the app's Home tab", nargs=(0, 0))
MAX_IMAGES = 4                   # images of one message scored per shortcut


def classify(click):
    W.budget.hit(click.principal)
    answers = [PREDICTOR.predict(download(f, W.settings), user=click.principal,
                                 request_id=f"shortcut-{click.trigger_id}-{i}")
               for i, f in enumerate(images_of(click.files)[:MAX_IMAGES])]
    return combined([predict_message(p, None, W.settings.labels) for p in answers])


def correct(click):
    if SLACK.web is None:
        raise Unavailable("this app has no bot token (secret slack-bot-token), so it cannot open a form")
    SLACK.web.views_open(trigger_id=click.trigger_id,
                         view=correction_modal(images_of(click.files)[0], W.settings.labels, click.channel_id))


def home_opened(ev):
    if ev.event.get("tab", "home") == "home" and SLACK.web is not None and ev.principal:
        SLACK.web.views_publish(user_id=ev.user_id, view=HOME.view(ev.principal))


def handle(event, context):
    if is_slack(event) or event.method == "POST":      # only Slack posts here: unsigned is refused (401)
        return SLACK.handle(event, None, actions={"vote": lambda c, a: button_vote(RECORDER, W.settings.model, c, a)},
                            shortcuts={CLASSIFY: classify, CORRECT: correct},
                            submissions={CORRECT: lambda c: correction_vote(RECORDER, c, W.settings)},
                            events={"app_home_opened": home_opened})
    return ok({"app": "AI Monkey", "takes": ["Slack interactions (buttons, shortcuts, forms)", "Slack events"],
               "usage": __doc__})
