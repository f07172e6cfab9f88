#!/bin/sh
# bad_inputs.sh [I2V]: feeds the built i2v (default ./i2v) the inputs a careless or hostile user could type
# (malformed and nested configs, huge sizes, overflowing and non-finite numbers, missing, wrong-type, cut and
# bomb files) and prints a Markdown table: what was tried, the command, the exit status, the peak memory and
# the first line of the message. Every row must end with status 1 (an error) or 2 (a usage error), within
# 300 MB, with a message; a row that does not is marked FAIL and the script exits 1.
# Needs only the i2v binary and a POSIX shell; /usr/bin/time (GNU) adds the peak memory. Uses I2V_THREADS=1 and
# a scratch folder under ${TMPDIR:-/tmp}; trains a tiny model there first (seconds).
I2V=$(cd "$(dirname "${1:-./i2v}")" && pwd)/$(basename "${1:-./i2v}")
[ -x "$I2V" ] || { echo "bad_inputs.sh: $I2V is not an executable (build it with make)"; exit 1; }
W=$(mktemp -d "${TMPDIR:-/tmp}/i2v_bad_inputs.XXXXXX") || exit 1
trap 'rm -rf "$W"' EXIT
export I2V_THREADS=1
cd "$W" || exit 1
TIME=
[ -x /usr/bin/time ] && /usr/bin/time -f %M true 2>/dev/null && TIME=/usr/bin/time
LIMIT_KB=307200
fails=0

# ---- the things tried on: a tiny model folder, a start frame, and bad files ----------------------------------
{
    "$I2V" train-stage1 --config tiny --out m --steps 1 --eval-batches 1 &&
    "$I2V" train-cond-ae --config tiny --out m --steps 1 &&
    "$I2V" train-cinn --config tiny --out m --steps 1 --eval-batches 1 &&
    "$I2V" train-cinn --config tiny --stage1 m --cond-ae m --out ctl --steps 1 --eval-batches 1 Training.control=True &&
    "$I2V" prepare synthetic --out frames --videos 1 --size 32
} > setup.log 2>&1 || { echo "bad_inputs.sh: could not make the tiny model (see $W/setup.log)"; trap - EXIT; exit 1; }
IMG=frames/train/traj_0_to_0/1/0.png
# 60,000 nested '[' on one line (120 KB) and 1,000,000 (2 MB)
printf 'Encoder:\n  channels: ' > deep.yaml; head -c 60000 /dev/zero | tr '\0' '[' >> deep.yaml; echo >> deep.yaml
printf 'Encoder:\n  channels: ' > deep2m.yaml; head -c 1000000 /dev/zero | tr '\0' '[' >> deep2m.yaml
printf 'Encoder:\n  channels: [[1]]\n' > nested.yaml
printf 'Training:\n  lr: 1e-4\n    bs: 3\n' > indent.yaml
printf 'Training: {lr: 1}\n' > flowmap.yaml
head -c 4096 /dev/urandom > random.bin
# a 15 KB GIF: 1000 one-pixel frames on a 9000 x 9000 screen (a decoder that allocates screens takes 248 MB)
{
    printf 'GIF89a\050\043\050\043\200\000\000\000\000\000\377\377\377'
    i=0
    while [ $i -lt 1000 ]; do printf '\054\000\000\000\000\001\000\001\000\000\002\002\104\001\000'; i=$((i + 1)); done
    printf ';'
} > bomb.gif
cp bomb.gif bomb.png
# a JPEG whose frame header claims 65535 x 65535 pixels (no data)
printf '\377\330\377\300\000\021\010\377\377\377\377\003\001\042\000\002\021\001\003\021\001\377\331' > huge.jpg
head -c 300 "$IMG" > cut.png
# NPY files: a header claiming 10^11 floats, and one NaN where residuals belong
npy() {   # npy FILE 'shape' BYTES...: a version-1 NPY of little-endian float32 with a 118-byte header
    h="{'descr': '<f4', 'fortran_order': False, 'shape': $2, }"
    { printf '\223NUMPY\001\000\166\000%s' "$h"; printf '%*s\n' $((117 - ${#h})) ''; } > "$1"
}
npy hugeshape.npy '(100000000000,)'
npy nan.npy '(1, 16)'; i=0; while [ $i -lt 16 ]; do printf '\000\000\300\177' >> nan.npy; i=$((i + 1)); done
# safetensors: a header length of 2^63 and a header that claims more data than the file holds
printf '\377\377\377\377\377\377\377\177{}' > hugeheader.safetensors
j='{"w":{"dtype":"F32","shape":[1000000000],"data_offsets":[0,4000000000]}}'
printf "\\$(printf %03o ${#j})\\000\\000\\000\\000\\000\\000\\000%s" "$j" > claims.safetensors
mkdir -p cut_model && cp m/config_stage1.yaml m/config_stage2.yaml m/config_stage2_AE.yaml m/cond_ae.safetensors \
    m/stage1.safetensors cut_model/ && head -c 5000 m/cinn.safetensors > cut_model/cinn.safetensors
mkdir -p badrec/train && cp random.bin badrec/train/traj_0_to_255.tfrecords
mkdir -p empty_dir
ABS="$W/m/cinn.safetensors"

# ---- the table ---------------------------------------------------------------------------------------------
echo "| # | input | command | exit | max RSS (MB) | first line of the message |"
echo "| --- | --- | --- | --- | --- | --- |"
row=0
try() {   # try 'what it is' ARGS...: runs i2v ARGS, prints a row
    what=$1; shift
    row=$((row + 1))
    if [ -n "$TIME" ]; then
        (ulimit -v 4194304; $TIME -f %M -o rss.txt timeout 120 "$I2V" "$@") > out.txt 2> err.txt
    else
        (ulimit -v 4194304; timeout 120 "$I2V" "$@") > out.txt 2> err.txt
    fi
    rc=$?
    msg=$(grep -v '^Command exited with' err.txt | head -1)
    [ -n "$msg" ] || msg=$(head -1 out.txt)
    kb=$( [ -n "$TIME" ] && tail -1 rss.txt || echo 0)
    mb=$( [ -n "$TIME" ] && echo $((kb / 1024)) || echo "?")
    verdict=
    if [ $rc -ne 1 ] && [ $rc -ne 2 ]; then verdict=" **FAIL: exit $rc**"; fi
    if [ "$kb" -gt $LIMIT_KB ]; then verdict="$verdict **FAIL: over 300 MB**"; fi
    if [ -z "$msg" ]; then verdict="$verdict **FAIL: no message**"; fi
    [ -n "$verdict" ] && fails=$((fails + 1))
    cmd=$(echo "i2v $*" | sed "s|$W/||g" | cut -c1-110)
    msg=$(echo "$msg" | sed "s|$W/||g; s/|/\\\\|/g" | cut -c1-200)
    echo "| $row | $what | \`$cmd\` | $rc | $mb | $msg$verdict |"
}
T1="train-stage1 --config tiny --out x --steps 1"
A="train-cond-ae --config tiny --out x --steps 1"
S="sample --model m --image $IMG"
# configs and overrides
try "nested list where integers belong (override)" $T1 'Encoder.channels=[[1]]'
try "nested list where integers belong (YAML)" train-stage1 --config nested.yaml --out x --steps 1
try "60,000 nested [ on one line (120 KB)" train-stage1 --config deep.yaml --out x --steps 1
try "1,000,000 nested [ (2 MB)" train-stage1 --config deep2m.yaml --out x --steps 1
try "nested override 40 levels deep" $T1 "a$(printf '.b%.0s' $(seq 40))=1"
try "a million channels" $T1 'Encoder.channels=[1000000, 32, 32, 32, 32]'
try "channels of 16384" $T1 'Encoder.channels=[16384, 16384, 16384, 16384, 16384]'
try "Decoder.channel_factor 4096" $T1 Decoder.channel_factor=4096
try "2e9 synthetic clips" $T1 Data.synth_train=2000000000
try "batch of 65536" $T1 Training.bs=65536
try "cINN of 4096 blocks" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Flow.n_flows=4096
try "cINN of 512 blocks 1024 times wider" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Flow.n_flows=512 Flow.flow_mid_channels_factor=1024
try "cINN subnetworks 7 layers deep" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Flow.flow_hidden_depth=7
try "cINN of no blocks" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Flow.n_flows=0
try "cINN subnetworks of width 0" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Flow.flow_mid_channels_factor=0
try "negative cINN batch" train-cinn --config tiny --stage1 m --cond-ae m --out x --steps 1 Training.bs=-1
try "PatchGAN of 0 filters" $T1 Discriminator_Patch.ndf=0
try "conditioning encoder of width 4096" $A AE.enc_width=4096
try "image size the generator cannot make" $T1 Data.img_size=33
try "integer overflow in a config value" $A Training.bs=99999999999999999999
try "negative batch" $A Training.bs=-4
try "text where a number belongs" $A Training.bs=ten
try "NaN learning rate" $A Training.lr=nan
try "infinite learning rate" $A Training.lr=inf
try "unknown key" $A Training.n_epoch=3
try "override without a value" $A Training.lr
try "override of a section" $A Training=3
try "unknown config name" train-stage1 --config nosuch --out x
try "a binary file as config" train-stage1 --config random.bin --out x
try "the program binary as config" train-stage1 --config "$I2V" --out x
try "YAML with a bad indent" train-stage1 --config indent.yaml --out x
try "YAML flow map" train-stage1 --config flowmap.yaml --out x
try "empty config" train-stage1 --config /dev/null --out x
# training options and files
try "--steps 1e3" $T1 --steps 1e3
try "--steps -1" train-cond-ae --config tiny --out x --steps -1
try "--steps 2^64" train-cond-ae --config tiny --out x --steps 18446744073709551616
try "--minutes nan" train-cond-ae --config tiny --out x --minutes nan
try "--keep 0" train-cond-ae --config tiny --out x --keep 0
try "--out without its value" train-cond-ae --config tiny --out
try "--lpips a missing file (config with LPIPS)" train-stage1 --config bair --out x --lpips nowhere.safetensors
try "--lpips a text file (config with LPIPS)" train-stage1 --config tiny --out x Training.w_percep=1 --lpips random.bin
try "--resume without a checkpoint" train-cond-ae --config tiny --out empty_dir --resume
try "--resume-from a wrong file" train-cond-ae --config tiny --out m --resume-from random.bin
try "train into a finished run without --resume" train-cond-ae --config tiny --out m --steps 2
try "--stage1 a missing folder" train-cinn --config tiny --stage1 nowhere --cond-ae m --out x
try "--save-every -1" train-cond-ae --config tiny --out x --save-every -1
# sampling
try "--frames 2^32 + 1" $S --frames 4294967297
try "--frames 10^9" $S --frames 1000000000
try "a million frames of 64 videos" $S -n 64 --frames 1000000
try "--temperature nan" $S --temperature nan
try "--temperature inf" $S --temperature inf
try "--temperature -1" $S --temperature -1
try "--seed -1" $S --seed -1
try "--seed 2^64" $S --seed 18446744073709551616
try "-n 0" $S -n 0
try "-n 65" $S -n 65
try "--endpoint nan" control --model ctl --image $IMG --endpoint nan,0,0
try "--endpoint 1e308" control --model ctl --image $IMG --endpoint 1e308,0,0
try "--endpoint of two numbers" control --model ctl --image $IMG --endpoint 0.5,0.5
try "--from-test 0" control --model ctl --from-test 0
try "--from-test with --image" control --model ctl --from-test 2 --image $IMG
try "control on an uncontrolled cINN" control --model m --image $IMG --endpoint 0.5,0.5,0.5
try "--cinn absolute path, missing" $S --cinn /nowhere/cinn.safetensors
try "--cinn a text file" $S --cinn random.bin
try "--cinn absolute path without its config" $S --cinn "$ABS" --cinn-config /nowhere.yaml
try "missing image" $S --image nothing.png
try "text file as image" sample --model m --image random.bin
try "15 KB GIF bomb as image" sample --model m --image bomb.gif
try "15 KB GIF bomb named .png" sample --model m --image bomb.png
try "JPEG claiming 65535 x 65535" sample --model m --image huge.jpg
try "PNG cut at 300 bytes" sample --model m --image cut.png
try "--nu a header of 10^11 floats" $S --nu hugeshape.npy
try "--nu with NaN residuals" $S -n 1 --nu nan.npy
try "--nu a text file" $S --nu random.bin
try "missing model folder" sample --model nowhere --image $IMG
try "a file as model folder" sample --model random.bin --image $IMG
try "model with a truncated cINN" sample --model cut_model --image $IMG
try "transfer from a missing clip" transfer --model m --driving nowhere --image $IMG
try "transfer from an empty folder" transfer --model m --driving empty_dir --image $IMG
# other commands
try "inspect a header length of 2^63" inspect hugeheader.safetensors
try "inspect a tensor beyond the file" inspect claims.safetensors
try "inspect a text file" inspect random.bin
try "evaluate --clips -3" evaluate --model m --clips -3
try "evaluate --split tset" evaluate --model m --split tset
try "evaluate with a network override" evaluate --model m Training.lr=1
try "evaluate on a missing data path" evaluate --model m Data.dataset=BAIR Data.data_path=nowhere
try "prepare bair from random bytes" prepare bair --tfrecords badrec/train --out y
try "prepare bair from a missing folder" prepare bair --tfrecords nowhere --out y
try "prepare synthetic --videos 10^11" prepare synthetic --out y --videos 99999999999
try "prepare landscape on a missing folder" prepare landscape nowhere
try "prepare DTDB without --texture" prepare DTDB frames
try "demo --minutes nan" demo --minutes nan --out y
try "frechet of text files" frechet random.bin random.bin
try "features with an unknown network" features --net nope --weights x --in x --out y
try "unknown command" frobnicate
try "no command"
echo
echo "$row inputs, $fails not refused cleanly (exit 1 or 2, a message, at most 300 MB)"
[ $fails -eq 0 ]
