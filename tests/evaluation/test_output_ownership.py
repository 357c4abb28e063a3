"""Every evaluation folder belongs to one evaluation: another command or configuration is refused before any work
(naming the owner and the way out), the same command again may rerun, a file as --output_dir is refused up front,
and the numbers are kept when something after the work fails. Before: eval_c silently replaced another run's six
files, eval_adv replaced an eval_c report with an adversarial-only one, and an --output_dir naming a file lost
the whole evaluation to a FileExistsError traceback at the end."""

import json

import pytest

from mocse_tf.errors import UsageError
from mocse_tf.evaluation import adversarial_eval, corruption_eval, plots
from mocse_tf.evaluation.config import EvalConfig


def _eval_c(model, output_dir, **overrides):
    settings = dict(models=[model], source="generate", dataset="synthetic", corruptions="fog", severities="2",
                    num_examples=8, batch_size=8, output_dir=str(output_dir))
    settings.update(overrides)
    return corruption_eval.run_eval_c(EvalConfig(**settings), show_progress=False)


def test_eval_folders_belong_to_one_evaluation(tmp_path, tiny_models, monkeypatch):
    out = tmp_path / "eval_c"
    first, _, _ = _eval_c(tiny_models["keras"], out)
    again, _, _ = _eval_c(tiny_models["keras"], out)  # the same command again: allowed, same numbers
    report_bytes = (out / "report.json").read_bytes()
    assert again["models"] == first["models"]
    assert json.loads((out / "owner.json").read_text())["tool"] == "bin/eval_c"

    with monkeypatch.context() as patch:
        patch.setattr(corruption_eval, "evaluate", lambda *a, **k: pytest.fail("work started"))
        patch.setattr(adversarial_eval, "evaluate_network", lambda *a, **k: pytest.fail("work started"))
        # Another configuration of eval_c.
        with pytest.raises(UsageError) as caught:
            _eval_c(tiny_models["keras"], out, seed=1)
        assert "belongs to another run" in str(caught.value) and "seed=0 there vs 1 now" in str(caught.value)
        assert "another `output_dir`" in str(caught.value) and "`overwrite`" in str(caught.value)
        # eval_adv into the eval_c folder without --merge_with.
        with pytest.raises(UsageError) as caught:
            adversarial_eval.run_eval_adv(EvalConfig(models=[tiny_models["keras"]], dataset="synthetic",
                                                     num_examples=8, attacks="fgsm", output_dir=str(out)),
                                          log=lambda line: None)
        message = str(caught.value)
        assert "made by bin/eval_c, not bin/eval_adv" in message and f"`merge_with`={out}" in message, message
        # An --output_dir that is a file, for both tools.
        a_file = tmp_path / "a_file"
        a_file.write_text("mine")
        with pytest.raises(UsageError, match="is a file, not a folder"):
            _eval_c(tiny_models["keras"], a_file)
        with pytest.raises(UsageError, match="is a file, not a folder"):
            adversarial_eval.run_eval_adv(EvalConfig(models=[tiny_models["keras"]], dataset="synthetic",
                                                     output_dir=str(a_file)), log=lambda line: None)
        assert a_file.read_text() == "mine"
    assert (out / "report.json").read_bytes() == report_bytes  # nothing was replaced

    # With --merge_with naming the report the folder holds, eval_adv adds its rows and the folder stays whole.
    report, _, _ = adversarial_eval.run_eval_adv(
        EvalConfig(models=[tiny_models["keras"]], dataset="synthetic", num_examples=8, batch_size=8, attacks="fgsm",
                   merge_with=str(out), output_dir=str(out)), log=lambda line: None)
    entry = report["models"]["tiny"]
    assert "fog" in entry["corruptions"] and any(label.startswith("FGSM") for label in entry["adversarial"])
    assert json.loads((out / "owner.json").read_text())["tool"] == "bin/eval_c"

    # --overwrite hands the folder to the other configuration.
    _eval_c(tiny_models["keras"], out, seed=1, overwrite=True)
    assert json.loads((out / "owner.json").read_text())["settings"]["seed"] == 1


def test_results_are_kept_when_the_plots_fail(tmp_path, tiny_models, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no display")

    monkeypatch.setattr(plots, "write_plots", broken)
    with pytest.raises(UsageError, match="the results are written .*report.json.* but the plots failed: "
                                         "RuntimeError: no display"):
        _eval_c(tiny_models["keras"], tmp_path / "out")
    assert json.loads((tmp_path / "out" / "report.json").read_text())["models"]["tiny"]["corruptions"]["fog"]
