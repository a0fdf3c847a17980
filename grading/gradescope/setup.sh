#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
# The autograder zip holds this folder's two files and a copy of the course
# repository in netcourse/ (see docs/instructor-guide.md, "Grading").
set -euo pipefail
apt-get update
apt-get install -y --no-install-recommends make
/autograder/source/netcourse/tools/deps.sh
