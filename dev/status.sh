#!/usr/bin/env bash
# What is running, by recorded pid.
. "$(dirname "$0")/lib.sh"
for name in minio kafka postgres mlflow archiver gateway trainer; do
  if alive "$name"; then echo "$name: running (pid $(pid_of "$name"), log $LOGS/$name.log)"; else echo "$name: stopped"; fi
done
