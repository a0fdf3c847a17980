#!/usr/bin/env bash
# Re-checks a lesson every time you save one of its files (make watch-NN).
#
#   tools/watch.sh NN
#
# Watches lessons/NN-*/ and common/ and runs `make lesson-NN` once at
# start, then once after every save of a *.cc, *.h, *.hpp or Makefile there
# (editor swap, backup and temp files are ignored). Several files saved
# together give one run: it waits until 300 ms pass with no further saves.
# Uses inotifywait (inotify-tools) if installed, else entr, else asks you to
# press Enter. NETCOURSE_WATCH=inotify|entr|manual picks one by hand.

set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

die() { echo "[watch] $*" >&2; exit 2; }

# The available lessons, from course.toml.
lesson_names() { "${PYTHON:-/usr/bin/python3}" -m checker.manifest names; }

known_lessons() {
    local names
    names=$(lesson_names | cut -c1-2 | paste -sd, -)
    echo "${names//,/, }"
}

# ---- which lesson -----------------------------------------------------------

[[ $# -eq 1 ]] || die "usage: tools/watch.sh NN, e.g. make watch-01 (lessons: $(known_lessons))"
NN=${1:0:2}   # 07 or 07-weensydb-5
[[ $NN =~ ^[0-9][0-9]$ ]] || die "'$NN' is not a lesson number: give two digits, e.g. make watch-01 (lessons: $(known_lessons))"
LESSON=$(lesson_names | grep "^$NN-" | head -n 1)
[[ -n $LESSON ]] || die "there is no lesson $NN (lessons: $(known_lessons))"
[[ -d lessons/$LESSON ]] ||
    die "lessons/$LESSON/ is missing: run make starters to create it"

WATCH_DIRS=("lessons/$LESSON")
[[ -d common ]] && WATCH_DIRS+=("common")

# ---- one check ----------------------------------------------------------------

clear_screen() {
    [[ -t 1 ]] || return 0
    clear 2>/dev/null || printf '\033[H\033[2J'
}

run_check() {
    clear_screen
    # fd 3 is the watcher's pipe: the lesson's programs must not inherit it.
    make --no-print-directory "lesson-$NN" 3<&-
    echo
    echo "[watch] lesson $NN · waiting for you to save a file (Ctrl-C to stop)"
}

# A file whose saving should trigger a check: sources, not editor droppings.
is_source() {
    local name=${1##*/}
    case $name in
        .*.sw? | *~ | 4913 | .\#* | *.tmp | \#*\#) return 1 ;;
        *.cc | *.h | *.hpp | Makefile) return 0 ;;
        *) return 1 ;;
    esac
}

# The source files, one a line; with `fingerprint`, with their times and sizes.
list_sources() {
    find "${WATCH_DIRS[@]}" -type f \( -name '*.cc' -o -name '*.h' -o -name '*.hpp' -o -name Makefile \) \
        ! -name '.*' ! -name '*~' ! -name '#*#' -printf "%p${1:+ %T@ %s}\n" 2>/dev/null | sort
}

# ---- cleaning up ----------------------------------------------------------------

WATCH_PID=
TMP=
cleanup() {
    if [[ -n $WATCH_PID ]]; then
        kill "$WATCH_PID" 2>/dev/null
        wait "$WATCH_PID" 2>/dev/null
        WATCH_PID=
    fi
    exec 3<&- 2>/dev/null
    [[ -n $TMP ]] && rm -rf "$TMP"
    TMP=
}
on_signal() {
    trap '' INT TERM HUP
    cleanup
    echo
    echo "[watch] stopped"
    exit 0
}
trap cleanup EXIT
trap on_signal INT TERM HUP

# ---- inotifywait ------------------------------------------------------------------

now_us() { local t=$EPOCHREALTIME; REPLY=${t//[.,]/}; }

# Reads one event line (from inotifywait's --format '%e %w%f') and says if it is
# a save of a source file.
relevant_event() {
    local events=${1%% *} path=${1#* }
    [[ $events == *ISDIR* ]] && return 1
    is_source "$path"
}

# Returns once a relevant change has settled (300 ms with no further relevant
# event); returns 1 if the watcher has gone away.
wait_for_change() {
    local line left deadline timeout
    while :; do
        IFS= read -r -u 3 line || return 1
        relevant_event "$line" && break
    done
    now_us; deadline=$((REPLY + 300000))
    while :; do
        now_us; left=$((deadline - REPLY))
        ((left > 0)) || return 0
        printf -v timeout '%d.%06d' $((left / 1000000)) $((left % 1000000))
        # A timeout means 300 ms of quiet; end of file, that the watcher has
        # gone (this change still gets its check, the next wait returns 1).
        IFS= read -r -t "$timeout" -u 3 line || return 0
        relevant_event "$line" && { now_us; deadline=$((REPLY + 300000)); }
    done
}

watch_inotify() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/netcourse-watch.XXXXXX") || return 1
    exec 3< <(exec inotifywait -m -r -e close_write,moved_to,create --format '%e %w%f' \
        "${WATCH_DIRS[@]}" 2>"$TMP/log")
    WATCH_PID=$!
    # Wait until the watches are set up, so a save right after the first check counts.
    local i
    for ((i = 0; i < 100; i++)); do
        grep -q 'Watches established' "$TMP/log" 2>/dev/null && break
        kill -0 "$WATCH_PID" 2>/dev/null || break
        sleep 0.05
    done
    if ! kill -0 "$WATCH_PID" 2>/dev/null; then
        echo "[watch] inotifywait failed: $(grep -v -e '^Setting up' -e 'Watches established' "$TMP/log" | tail -n 1)" >&2
        cleanup
        return 1
    fi
    run_check
    while wait_for_change; do
        run_check
    done
    if [[ -n $WATCH_PID ]] && ! kill -0 "$WATCH_PID" 2>/dev/null; then
        echo "[watch] inotifywait stopped: $(tail -n 1 "$TMP/log")" >&2
    fi
    cleanup
    return 1
}

# ---- entr ------------------------------------------------------------------------

# entr only tells that something changed: the script itself compares the
# sources' times and sizes before and after, and waits for them to settle.
watch_entr() {
    local last current settled rc
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/netcourse-watch.XXXXXX") || return 1
    last=$(list_sources fingerprint)
    run_check
    while :; do
        current=$(list_sources fingerprint)
        if [[ $current == "$last" ]]; then
            # -z: return after the first change; -d: or when a file appears in a
            # watched directory (the loop then watches the new file too).
            # (In the background, so that a signal stops the wait at once.)
            list_sources | entr -n -p -d -z true >/dev/null 2>"$TMP/log" &
            WATCH_PID=$!
            wait "$WATCH_PID"
            rc=$?
            WATCH_PID=
            if ((rc != 0 && rc != 2)); then
                echo "[watch] entr failed: $(tail -n 1 "$TMP/log")" >&2
                return 1
            fi
        fi
        settled=$(list_sources fingerprint)
        while sleep 0.3; do
            current=$(list_sources fingerprint)
            [[ $current == "$settled" ]] && break
            settled=$current
        done
        [[ $settled == "$last" ]] && continue
        last=$settled
        run_check
    done
}

# ---- by hand ---------------------------------------------------------------------------

watch_manual() {
    local answer
    run_check
    while :; do
        echo "[watch] file watching is not available here: press Enter to re-check, q then Enter to quit"
        IFS= read -r answer || return 0
        [[ $answer == [qQ]* ]] && return 0
        run_check
    done
}

case ${NETCOURSE_WATCH:-auto} in
    inotify) watch_inotify || exit 1 ;;
    entr) watch_entr || exit 1 ;;
    manual) watch_manual ;;
    auto)
        command -v inotifywait >/dev/null && watch_inotify ||
            { command -v entr >/dev/null && list_sources | grep -q . && watch_entr; } ||
            watch_manual
        ;;
    *) die "NETCOURSE_WATCH must be inotify, entr or manual" ;;
esac
