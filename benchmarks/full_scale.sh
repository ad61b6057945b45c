#!/usr/bin/env bash
# Full-size synthetic MuSe-CaR (`muse synth --scale full`) and `muse prepare` of it, one group
# of feature sets at a time: time, peak memory and disk of each step go to a log.
#
# The whole package (~85 GB of CSV) and its stores (~140 GB) do not fit on one 64 GB disk, so
# the 14 sets are written in groups whose union is the full package. A feature file does not
# depend on the other sets chosen (the generator seeds each by set name), so every group's files
# are byte for byte those of the one-shot package; labels, transcripts and wav files are written
# again with each group.
#
#   bash benchmarks/full_scale.sh WORK_DIR GROUP [TASKS] [KEEP]
#
# GROUP is a name from the list below; TASKS (default wild,topic,trust) the stores to prepare;
# KEEP=keep leaves the package and stores in WORK_DIR/GROUP for training benchmarks (the default
# removes them once measured). Raw audio is stored with the "small" group only.
set -euo pipefail

work=${1:?usage: full_scale.sh WORK_DIR GROUP [TASKS] [KEEP]}
group=${2:?name a group: small lld xception deepspectrum}
tasks=${3:-wild,topic,trust}
keep=${4:-}

case $group in
  small) sets=egemaps,vggface,gocar,openpose,au,gaze,landmarks_2d,landmarks_3d,pdm,pose,fasttext
         audio=() ;;
  lld|xception|deepspectrum) sets=$group; audio=(--no-audio) ;;
  *) echo "unknown group $group" >&2; exit 2 ;;
esac

package=$work/$group/package
stores=$work/$group/stores
log=$work/full_scale.log
mkdir -p "$work/$group"
rm -rf "$package" "$stores"

measure() {  # measure STEP COMMAND...: wall seconds and peak resident memory (ru_maxrss)
  local step=$1; shift
  /usr/bin/time -f "$group $step wall_s=%e peak_rss_kb=%M" -a -o "$log" "$@"
}

measure synth muse synth --out "$package" --scale full --features "$sets"
echo "$group package_bytes=$(du -sb "$package" | cut -f1)" \
     "csv_files=$(find "$package" -name '*.csv' | wc -l)" \
     "wav_files=$(find "$package" -name '*.wav' | wc -l)" >> "$log"
measure "prepare[$tasks]" muse prepare --package "$package" --out "$stores" --tasks "$tasks" \
  "${audio[@]}"
for store in "$stores"/*.h5; do
  echo "$group store $(basename "$store") bytes=$(stat -c %s "$store")" >> "$log"
done
if [[ $keep != keep ]]; then
  rm -rf "$package" "$stores"
fi
