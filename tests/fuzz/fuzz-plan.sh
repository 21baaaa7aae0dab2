#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-plan over its corpus, then more, 3000 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" plan 3000
