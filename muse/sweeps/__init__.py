"""The paper's tables as Hydra sweeps (`sweep=`), the rows they run (`row=`) and the launchers
(`hydra/launcher=parallel|slurm`): config files shipped inside the package, so every install
composes them (conf/train.yaml searches `pkg://muse.sweeps`), whatever the working directory.
See README.md in this folder.
"""
