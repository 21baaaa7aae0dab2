#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-platform over its corpus, then more, 5000 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" platform 5000
