#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-reply over its corpus, then more, 20000 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" reply 20000
