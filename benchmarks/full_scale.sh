#!/usr/bin/env bash
# Full-size synthetic MuSe-CaR (`muse synth --scale full`) and `muse prepare` of it, one group
# of feature sets at a time: time, peak memory and disk of each step go to a log.
#
# The whole package (85 GB of CSV) and its stores (124 GB) do not fit on one 64 GB disk, so
# the 14 sets are written in groups whose union is the full package. A feature file does not
# depend on the other sets chosen (the generator seeds each by set name), so every group's files
# are byte for byte those of the one-shot package; labels, transcripts and wav files are written
# again with each group.
#
#   bash benchmarks/full_scale.sh WORK_DIR GROUP [TASKS] [KEEP]
#
# GROUP is "small" (the eleven sets below, with raw audio) or the name of one feature set
# (lld, xception, deepspectrum: stored without audio). TASKS (default trust,topic,wild) are
# prepared one `muse prepare` at a time, in that order; each store is measured and removed
# unless its task is KEEP, so the disk holds the package and one store at a time. The package
# is removed at the end; a kept store stays in WORK_DIR/GROUP/stores for full_scale_epoch.py.
set -euo pipefail

work=${1:?usage: full_scale.sh WORK_DIR GROUP [TASKS] [KEEP]}
group=${2:?name a group: small, or one feature set such as lld, xception, deepspectrum}
tasks=${3:-trust,topic,wild}
keep=${4:-}

case $group in
  small) sets=egemaps,vggface,gocar,openpose,au,gaze,landmarks_2d,landmarks_3d,pdm,pose,fasttext
         audio=() ;;
  *) sets=$group; audio=(--no-audio) ;;  # one feature set: lld, xception, deepspectrum, ...
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
for task in ${tasks//,/ }; do
  measure "prepare[$task]" muse prepare --package "$package" --out "$stores" --tasks "$task" \
    "${audio[@]}"
  echo "$group store $task.h5 bytes=$(stat -c %s "$stores/$task.h5")" >> "$log"
  if [[ $task != "$keep" ]]; then
    rm "$stores/$task.h5"
  fi
done
rm -rf "$package"
