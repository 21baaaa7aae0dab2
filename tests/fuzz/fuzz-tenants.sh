#!/bin/sh
# SPDX-License-Identifier: MIT
# fuzz-tenants over its corpus, then more, 5000 executions in all (see run.sh).
exec "$(dirname "$0")/run.sh" tenants 5000
