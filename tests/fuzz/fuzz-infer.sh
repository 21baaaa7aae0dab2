#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-infer over its corpus, then more, 1500 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" infer 1500
