"""The model card written next to every trained model: what it learned from, how well it does, and
how quantisation changes that, so that whoever deploys it can judge it without re-running anything."""

from __future__ import annotations

from typing import Any

from vigil.labels import LABELS

SETS = ("dev", "test", "functional")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def model_card(meta: dict[str, Any]) -> str:
    precision = "int8" if meta["int8_ok"] else "fp32"
    metrics = meta["metrics"]
    lines = [
        f"# Vigil classifier, version {meta['version']}",
        "",
        "Labels public posts about UK doctors and GP practices as `threat`, `abusive`, `critical` and",
        "`praise` (multi-label; no label means neutral). Definitions, examples and borderline rulings:",
        "`docs/annotation-guidelines.md`. Scores are probabilities, not severity; alerts are meant to be",
        "read by a person, not to act on automatically.",
        "",
        f"- Base model: {meta['base_model']}, fine-tuned with `AutoModelForSequenceClassification`",
        '  (`problem_type="multi_label_classification"`, one sigmoid per label).',
        f"- Trained: {meta['trained_at']} in {meta['train_seconds']} s on {meta['threads']} threads of "
        f"{meta['cpu']} ({meta['total_seconds']} s with evaluation); torch {meta['versions']['torch']}, "
        f"transformers {meta['versions']['transformers']}.",
        f"- Default precision: **{precision}** (see Quantisation).",
        f"- Version `{meta['version']}` is a fingerprint of the corpus files, the training configuration,",
        "  the base model and the training code; every stored label carries it (plus the precision).",
        "",
        "## Data",
        "",
        "Hand-written corpus for this domain (`classifier/corpus/`), split 80/10/10 by label combination",
        "with near-duplicates kept in one split; the functional set (HateCheck-style cases) is only",
        "ever used for evaluation and has no near-duplicate in train.",
        "",
    ]
    lines += _table(
        ["Set", "Examples", *LABELS, "neutral"],
        [
            [name, c["examples"], *(c[label] for label in LABELS), c["neutral"]]
            for name, c in meta["corpus"].items()
        ],
    )
    config = meta["train_config"]
    lines += ["## Training", ""]
    lines += _table(["Setting", "Value"], [[key, value] for key, value in config.items()])
    lines += _table(
        ["Epoch", "Train loss", "Dev macro-F1"],
        [[row["epoch"], row["loss"], row["dev_macro_f1"]] for row in meta["history"]],
    )
    lines += [
        f"The epoch with the best dev macro-F1 ({meta['best_epoch']}) is kept.",
        "",
        "## Thresholds",
        "",
        "Chosen on the dev split for each precision: the best F1 for each label, except `threat`,",
        "which takes the most precise threshold that keeps a dev recall of at least",
        f"{config['threat_min_recall']:g} (a missed threat is the worst failure).",
        "",
    ]
    lines += _table(
        ["Label", "fp32", "int8"],
        [[label, meta["thresholds"]["fp32"][label], meta["thresholds"]["int8"][label]] for label in LABELS],
    )
    lines += [f"## Results ({precision})", ""]
    chosen = metrics[precision]
    rows = []
    for name in SETS:
        report = chosen[name]
        rows.append(
            [name, report["macro_f1"], report["exact_match"]]
            + [
                f"{_pct(report['labels'][label]['precision'])} / {_pct(report['labels'][label]['recall'])}"
                f" / {_pct(report['labels'][label]['f1'])}"
                for label in LABELS
            ]
        )
    lines += ["Per label: precision / recall / F1 in %.", ""]
    lines += _table(["Set", "Macro-F1", "Exact match", *LABELS], rows)
    lines += [
        "Functional tests. Accuracy counts a case right when the label(s) its function tests are right",
        "(as HateCheck scores them); strict accuracy when its whole label set is right.",
        "",
    ]
    lines += _table(
        ["Function", "Tests", "Correct", "Accuracy %", "Strict %"],
        [
            [
                name,
                ", ".join(row["focus"]),
                f"{row['correct']}/{row['total']}",
                _pct(row["accuracy"]),
                _pct(row["strict_accuracy"]),
            ]
            for name, row in chosen["functional"].get("functions", {}).items()
        ],
    )
    lines += [
        "## Quantisation",
        "",
        "int8 dynamic quantisation of every Linear layer (weights per output channel, with 7 bits",
        "on CPUs without VNNI, where 8 could overflow; activations per batch, with 8 bits), with its",
        "own thresholds chosen on dev. It is the default only if it costs at most",
        f"{_pct(config['int8_max_loss'])} point(s) of dev macro-F1; here it costs "
        f"{_pct(meta['int8_dev_loss'])}, so the default is **{precision}**.",
        "",
    ]
    lines += _table(
        ["Set", "fp32 macro-F1", "int8 macro-F1"],
        [[name, metrics["fp32"][name]["macro_f1"], metrics["int8"][name]["macro_f1"]] for name in SETS],
    )
    lines += [
        "## Limitations",
        "",
        "- Written for UK English posts about doctors and GP practices; other domains and languages",
        "  were not tested.",
        "- The corpus is hand-written for this domain, not sampled from real feeds: real posts will be",
        "  messier; check alerts and report mistakes so that they can be added to the corpus.",
        "- Sarcasm, quotes of abuse and very long texts remain the hardest cases.",
        "",
        "## Reproduce",
        "",
        "    vigil model train --force          # same corpus + configuration -> same fingerprint",
        "    vigil model eval classifier/corpus/test.jsonl",
        "    vigil model eval classifier/corpus/functional.jsonl",
        "",
    ]
    return "\n".join(lines)
