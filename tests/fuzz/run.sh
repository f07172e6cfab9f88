#!/bin/sh
# run.sh FZ SECONDS NAME...: runs each fuzz target FZ/fuzz_NAME for SECONDS from its seed corpus (the same
# folders test_fuzz_replay.c replays) and a working corpus kept in FZ/corpus/NAME; prints executions and
# findings per target; exits 1 if any target found something (left in FZ/findings/).
FZ=$1; SECONDS_EACH=$2; shift 2
status=0
mkdir -p "$FZ/findings" "$FZ/seeds"
for name in "$@"; do
    seeds="$FZ/seeds/$name"; corpus="$FZ/corpus/$name"
    rm -rf "$seeds"; mkdir -p "$seeds" "$corpus"
    case $name in
        png) cp tests/data/png/*.png "$seeds/" ;;
        jpeg) cp tests/data/jpeg/*.jpg "$seeds/" ;;
        gif) cp tests/data/gif/*.gif "$seeds/" ;;
        npy) cp tests/data/npy/*.npy "$seeds/" ;;
        safetensors) cp tests/data/*.safetensors tests/data/convert/*.safetensors "$seeds/" ;;
        tfrecord) cp tests/data/data/*.tfrecords "$seeds/" ;;
        config)   # the target reads an override line, then the YAML
            for f in configs/*/*.yaml tests/data/convert/*.yaml; do
                { echo "Training.lr=1e-4"; cat "$f"; } > "$seeds/$(echo "$f" | tr / _)"
            done ;;
    esac
    cp tests/data/fuzz/"$name"/* "$seeds/" 2>/dev/null
    log="$FZ/$name.log"
    "$FZ/fuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$FZ/findings/$name-" "$corpus" "$seeds" > "$log" 2>&1
    rc=$?
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$')
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$')
    secs=$( [ -n "$runs" ] && [ "${rate:-0}" -gt 0 ] && echo $((runs / rate)) || echo "?")
    found=$(ls "$FZ/findings" | grep -c "^$name-")
    echo "fuzz $name: ${runs:-?} executions in about $secs s (${rate:-?}/s), corpus $(ls "$corpus" | wc -l) inputs, $found findings"
    if [ $rc -ne 0 ] || [ "$found" -ne 0 ]; then
        status=1
        grep -m 3 -E 'ERROR|SUMMARY|runtime error|abort' "$log"
        echo "  the input is in $FZ/findings/; copy it to tests/data/fuzz/$name/ (make test replays it) after the fix"
    fi
done
exit $status
