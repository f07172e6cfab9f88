#!/bin/sh
# kill_trials.sh [TRIALS] [I2V]: kills training runs at random moments (kill -9, and SIGTERM) and checks what a
# crash may not break: after --resume the loss log has its header and every step once, whole; no temporary file
# of a killed save is left; the losses equal those of an uninterrupted run; SIGTERM saves and exits with 143.
# Stage 1 at the tiny config with a checkpoint every step, so kills often land inside a save. Needs only the
# built i2v; prints one line per trial and a summary, exits 1 if any trial broke a rule.
TRIALS=${1:-10}
I2V=$(cd "$(dirname "${2:-./i2v}")" && pwd)/$(basename "${2:-./i2v}")
W=$(mktemp -d "${TMPDIR:-/tmp}/i2v_kill_trials.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
export I2V_THREADS=1
RUN="$I2V train-stage1 --config tiny --steps 12 --save-every 1 --eval-batches 1"
CSV=stage1_losses.csv
bad=0

# the loss columns (after step,epoch,seconds) of a log
losses() { cut -d, -f4- "$1"; }
# header once, then steps 0..n-1 in order, each with the header's number of fields
whole() {
    awk -F, -v n="$2" 'NR == 1 { ok = /^step,epoch,seconds,/; cols = NF; next }
        { ok = ok && NF == cols && $1 == NR - 2 } END { exit !(ok && NR == n + 1) }' "$1"
}

$RUN --out "$W/ref" > "$W/ref.log" 2>&1 || { echo "the uninterrupted run failed: $W/ref.log"; trap - EXIT; exit 1; }
i=1
while [ "$i" -le "$TRIALS" ]; do
    d="$W/t$i"
    sig=KILL
    [ $((i % 4)) -eq 0 ] && sig=TERM
    $RUN --out "$d" > "$d.log" 2>&1 &
    pid=$!
    # after a random number of logged steps (1..10), then a random 0..0.4 s more: inside a step or a save
    want=$(awk -v s="$i" 'BEGIN { srand(s); printf "%d", 2 + 10 * rand() }')
    pause=$(awk -v s="$i" 'BEGIN { srand(s + 1000); printf "%.2f", 0.4 * rand() }')
    while kill -0 $pid 2>/dev/null && [ "$(cat "$d/$CSV" 2>/dev/null | wc -l)" -lt "$want" ]; do
        sleep 0.05
    done
    sleep "$pause"
    kill -s $sig $pid 2>/dev/null
    wait $pid
    rc=$?
    tmps_before=$(ls "$d" "$d/checkpoints" 2>/dev/null | grep -c '\.tmp\.')
    step=$(grep -c '' "$d/$CSV" 2>/dev/null)
    resumed=ok
    if [ -f "$d/stage1.safetensors" ]; then
        $RUN --out "$d" --resume > "$d.resume.log" 2>&1 || resumed="resume failed"
    else
        rm -rf "$d"   # killed before its first checkpoint: a fresh start is what a user does
        $RUN --out "$d" > "$d.resume.log" 2>&1 || resumed="rerun failed"
    fi
    tmps_after=$(ls "$d" "$d/checkpoints" 2>/dev/null | grep -c '\.tmp\.')
    verdict=ok
    [ "$sig" = TERM ] && [ "$rc" -ne 143 ] && [ "$rc" -ne 0 ] && verdict="SIGTERM exit $rc"
    [ "$resumed" != ok ] && verdict=$resumed
    whole "$d/$CSV" 12 || verdict="$verdict; the log is not whole"
    [ "$tmps_after" -ne 0 ] && verdict="$verdict; $tmps_after temporaries left"
    [ "$(losses "$d/$CSV")" = "$(losses "$W/ref/$CSV")" ] || verdict="$verdict; losses differ"
    [ "$verdict" = ok ] || bad=$((bad + 1))
    echo "trial $i: kill -$sig, exit $rc, log lines at the kill ${step:-0}, temporaries left by the kill $tmps_before, after resume $tmps_after: $verdict"
    i=$((i + 1))
done
echo "$TRIALS trials, $bad broke a rule"
[ $bad -eq 0 ]
