"""Reads an accuracy.csv written by mocse_tf.evaluation.report back into model entries, so tests can check that
the CSV holds every number of the report."""

import csv


def read_csv(path):
    """{model: entry} with clean / corruptions / adversarial accuracies read back from an accuracy.csv."""
    models = {}
    with open(path, encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            model = models.setdefault(row["model"], {})
            accuracy = float(row["accuracy"])
            if row["section"] == "clean":
                model["clean"] = accuracy
            elif row["section"] == "corruption":
                model.setdefault("corruptions", {}).setdefault(row["name"], {})[row["severity"]] = accuracy
            elif row["section"] == "ece":
                calibration = model.setdefault("calibration", {})
                if row["name"] == "natural":
                    calibration["clean"] = accuracy
                else:
                    calibration.setdefault("corruptions", {}).setdefault(row["name"], {})[row["severity"]] = accuracy
            else:
                model.setdefault("adversarial", {})[row["name"]] = accuracy
    return models
