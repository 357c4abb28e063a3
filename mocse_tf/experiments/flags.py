"""absl flags of bin/table1, one per Table1Config field, with the default taken from the dataclass."""

import dataclasses

from absl import flags

from mocse_tf.experiments.table1 import Table1Config

_HELP = {
    "output_dir": "Folder of the whole table (runs, models, evaluations, table1.md); rerunning the same command "
                  "resumes it. Keep it outside the repository or under runs/.",
    "seeds": "Comma-separated seeds; every model is trained once per seed (e.g. 0,1,2).",
    "rows": "Training regimes to run: any of standard, adversarial, augmented (comma-separated).",
    "mocse_aggregates": "MoCSE aggregates: the first is the MoCSE column (margin = the default), more add ablation "
                        "columns (e.g. margin,true_prob for the paper's literal reading).",
    "dataset": "Data set: cifar10 (tfds), cifar10_local (see --local_dir), synthetic or cifar100.",
    "data_dir": "tfds data folder (cifar10 and, for --corruption_source=tfds, cifar10_corrupted).",
    "local_dir": "A cifar-10-batches-py folder for --dataset=cifar10_local.",
    "epochs": "Training epochs of every model (the paper: 200).",
    "width": "PreAct-ResNet-18 base width (the paper: 64).",
    "expert_width": "Width of each MoCSE expert (16: compute comparable to one PreAct-ResNet-18 of width 64).",
    "num_train_examples": "Train on the first N training images (0 = all).",
    "num_test_examples": "Clean and corrupted test images per set (0 = all); also each epoch's validation set.",
    "num_attack_examples": "Test images attacked by the adversarial evaluation.",
    "batch_size": "Training batch size.",
    "learning_rate": "Peak learning rate of the cosine schedule (torch.optim.SGD recipe, momentum 0.9, coupled "
                     "weight decay 5e-4).",
    "adv_steps": "PGD steps of adversarial training (the paper's recipe: 10; fewer is labelled REDUCED).",
    "adv_step_size": "PGD step of adversarial training in [0, 1] pixel units (2/255 = 0.00784).",
    "adv_eps": "L-inf radius of adversarial training in [0, 1] pixel units (8/255 = 0.0314).",
    "corruption_source": "generate (make_c writes the 19 x 5 corrupted test set once into <output_dir>/corrupted "
                         "and every model reads it), folder (--c_dir, e.g. the extracted CIFAR-10-C) or tfds "
                         "(cifar10_corrupted).",
    "c_dir": "Folder for --corruption_source=folder.",
    "attacks": "Attacks of the adversarial evaluation (bin/eval_adv --attacks): autoattack (default: AutoAttack's "
               "standard version, the number to report), or e.g. pgd20 or default (PGD/APGD set) for a cheaper run.",
    "square_queries": "Query budget of AutoAttack's Square stage (the standard version: 5000).",
    "targets": "Target classes of AutoAttack's APGD-T and FAB-T stages (the standard version: 9).",
    "attack_restarts": "Random restarts of each attack.",
    "eval_batch_size": "Batch size of the evaluations.",
    "dry_run": "Print the runs and their estimated cost (images x forward/backward passes) and stop.",
}


def define_table1_flags():
    for field in dataclasses.fields(Table1Config):
        if field.name in flags.FLAGS:
            continue
        default = getattr(Table1Config, field.name)
        kind = {bool: "bool", int: "integer", float: "float"}.get(type(default), "string")
        getattr(flags, f"DEFINE_{kind}")(field.name, default, _HELP[field.name])


def config_from_flags(flag_values=None):
    flag_values = flag_values or flags.FLAGS
    return Table1Config(**{f.name: flag_values[f.name].value for f in dataclasses.fields(Table1Config)})
