#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-model over its corpus, then more, 4000 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" model 4000
