"""Typed hyperparameters per model kind, `molmag validate` and `molmag schema`."""

from __future__ import annotations

import inspect
import json

import pytest
from typer.testing import CliRunner

from molmag.cli.main import app
from molmag.configs import CONFIG_KINDS, detect_kind, json_schemas, validate_config
from molmag.models.committee import KINDS, member_class
from molmag.models.hyperparameters import HYPERPARAMETERS, check_hyperparameters
from molmag.training.config import load_train_config, model_section

runner = CliRunner()


def test_every_model_kind_has_a_settings_model():
    assert set(HYPERPARAMETERS) == set(KINDS)


@pytest.mark.parametrize("kind", [k for k in KINDS if not k.startswith("gmnn")])
def test_settings_defaults_are_the_members_defaults(kind):
    """The ridge members keep their defaults in their signatures; the settings models
    document the same values (so a template's commented default is what a run uses)."""
    sig = inspect.signature(member_class(kind).__init__)
    fields = HYPERPARAMETERS[kind].model_fields
    for name, field in fields.items():
        assert name in sig.parameters, f"{kind}: {name} is not a keyword of the member"
        default = sig.parameters[name].default
        assert tuple(default) == field.default if isinstance(default, tuple) else \
            default == field.default, (kind, name)
    keywords = {n for n, p in sig.parameters.items()
                if p.kind == p.KEYWORD_ONLY and n != "seed"}
    assert keywords == set(fields), kind


def test_gmnn_members_take_their_hyperparameters_from_the_settings_model():
    from molmag.models.gmnn import GMNNEnergy, GMNNTensor

    desc = {"species": [1, 6, 7, 27], "n_radial": 2, "n_basis": 3}
    t = GMNNTensor(desc, hidden=[8, 8], max_epochs=3)
    assert t.hyper["hidden"] == (8, 8) and t.hyper["max_epochs"] == 3
    assert t.hyper["batch_size"] == 32 and t.hyper["origin"] == "centroid"
    e = GMNNEnergy(desc, hidden=[4])
    assert e.hyper["max_epochs"] == 35 and e.hyper["force_weight"] == 12.0
    with pytest.raises(ValueError, match="unknown gmnn-tensor hyperparameters: widths"):
        GMNNTensor(desc, widths=[8])
    with pytest.raises(ValueError, match="env_cutoff .*needs origin: metal"):
        GMNNTensor(desc, env_cutoff=3.0)
    with pytest.raises(ValueError, match="gmnn-energy hyperparameter stop_on"):
        GMNNEnergy(desc, stop_on="never")


def test_check_hyperparameters_keeps_only_the_keys_given():
    assert check_hyperparameters("covariant-ridge", {"degree": 3}) == {"degree": 3}
    full = check_hyperparameters("snap-energy", {}, complete=True)
    assert full["force_weight"] == 0.1 and len(full["lambdas"]) == 27
    assert full["pair_cutoff"] == 0.0 and full["pair_basis"] == 12
    with pytest.raises(ValueError, match="pair_cutoff must be 0 .no pair term. or above 0.7"):
        check_hyperparameters("snap-energy", {"pair_cutoff": 0.5})
    with pytest.raises(ValueError, match="unknown model kind 'forest'"):
        check_hyperparameters("forest", {})


def test_misspelled_hyperparameter_is_refused_when_the_file_is_read(tmp_path):
    p = tmp_path / "train.yaml"
    p.write_text("model:\n  kind: covariant-ridge\n  hyper: {foo: 1}\ndata: {dataset: x.db}\n")
    with pytest.raises(ValueError) as exc:
        load_train_config(p)
    assert str(exc.value) == f"{p}: model.hyper.foo: unknown key"
    p.write_text("model:\n  kind: gmnn-tensor\n  hyper: {hidden: [0], origin: top}\n"
                 "data: {dataset: x.db}\n")
    with pytest.raises(ValueError, match=r"train.yaml: model.hyper.hidden: .*; "
                                         r"model.hyper.origin: Input should be"):
        load_train_config(p)
    # the same key is fine for a kind that has it
    p.write_text("model:\n  kind: gmnn-tensor\n  hyper: {hidden: [16, 16]}\n"
                 "data: {dataset: x.db}\n")
    cfg = load_train_config(p)
    assert cfg.model.hyper_kwargs() == {"hidden": (16, 16)}


def test_stored_configuration_keeps_only_the_hyperparameters_set(tmp_path):
    """Model files and checkpoint hashes store ``hyper`` as written (not every default), so
    typed settings do not change what earlier runs stored."""
    p = tmp_path / "t.yaml"
    p.write_text("model: {kind: snap-energy, hyper: {force_weight: 0.2}}\n"
                 "data: {dataset: x.db}\n")
    dumped = load_train_config(p).model_dump()
    assert dumped["model"]["hyper"] == {"force_weight": 0.2}
    assert dumped["model"]["kind"] == "snap-energy"
    sec = model_section("cf-ridge", committee=2)
    assert sec.kind == "cf-ridge" and sec.hyper_kwargs() == {}


def test_cli_validate_names_file_and_key_and_exits_1(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("model: {kind: covariant-ridge}\ndata: {dataset: x.db}\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {kind: covariant-ridge, hyper: {degre: 2}}\n"
                   "data: {dataset: x.db}\n")
    res = runner.invoke(app, ["validate", str(good)])
    assert res.exit_code == 0 and "a valid molmag train configuration" in res.output
    res = runner.invoke(app, ["validate", str(good), str(bad)])
    assert res.exit_code == 1
    assert f"{bad}: model.hyper.degre: unknown key" in res.output.replace("\n", "")
    res = runner.invoke(app, ["validate", str(good), "--json"])
    doc = json.loads(res.stdout)
    assert doc[str(good)]["kind"] == "train"
    assert doc[str(good)]["settings"]["model"]["committee"] == 3


@pytest.mark.parametrize("kind", list(CONFIG_KINDS))
def test_every_template_validates_as_its_kind(tmp_path, kind):
    """`molmag template K` writes a file that `molmag validate` recognises and accepts."""
    out = tmp_path / f"{kind}.yaml"
    res = runner.invoke(app, ["template", kind, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert detect_kind(out).name == kind
    assert validate_config(out)[0] == kind


@pytest.mark.parametrize("model", list(KINDS))
def test_train_templates_document_every_hyperparameter(tmp_path, model):
    out = tmp_path / f"{model}.yaml"
    assert runner.invoke(app, ["template", "train", "--model", model, "-o", str(out)]) \
        .exit_code == 0
    text = out.read_text()
    for name in HYPERPARAMETERS[model].model_fields:
        if name != "checkpoint":
            assert f" {name}: " in text, (model, name)
    assert validate_config(out, "train")[1].model.kind == model


def test_validate_refuses_a_file_of_no_known_kind(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("colour: blue\n")
    with pytest.raises(ValueError, match="x.yaml: none of its top-level keys"):
        validate_config(p)
    with pytest.raises(ValueError, match="unknown configuration kind 'nope'"):
        validate_config(p, "nope")


def test_schemas_cover_every_kind_and_every_hyperparameter(tmp_path):
    schemas = json_schemas()
    assert set(schemas) == set(CONFIG_KINDS)
    train = json.dumps(schemas["train"])
    for model in HYPERPARAMETERS.values():
        for name in model.model_fields:
            assert f'"{name}"' in train
    res = runner.invoke(app, ["schema", "--out", str(tmp_path / "s")])
    assert res.exit_code == 0
    files = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert files == sorted(f"molmag-{k}.schema.json" for k in CONFIG_KINDS)
    md = json.loads((tmp_path / "s" / "molmag-md.schema.json").read_text())
    assert md["title"] == "molmag md configuration" and md["additionalProperties"] is False


def test_misspelled_descriptor_setting_is_refused_with_its_key(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text("model: {kind: snap-energy}\ndescriptor: {twojmx: 4}\ndata: {dataset: x.db}\n")
    with pytest.raises(ValueError, match=r"d.yaml: descriptor: unknown SNAP setting\(s\) "
                                         r"twojmx \(known: species, rcutfac, twojmax"):
        load_train_config(p)
    p.write_text("model: {kind: gmnn-energy}\ndescriptor: {twojmax: 4}\n"
                 "data: {dataset: x.db}\n")
    with pytest.raises(ValueError, match="unknown Gaussian-moment setting"):
        load_train_config(p)
    p.write_text("model: {kind: gmnn-energy}\ndescriptor: {n_radial: 4}\n"
                 "data: {dataset: x.db}\n")
    assert load_train_config(p).descriptor == {"n_radial": 4}


def test_learn_descriptor_overrides_are_checked_per_role(tmp_path):
    p = tmp_path / "learn.yaml"
    p.write_text("descriptors: {tensr: {}}\n")
    with pytest.raises(ValueError, match=r"learn.yaml: descriptors.tensr: not a model role"):
        validate_config(p, "learn")
    p.write_text("descriptors: {potential: {twojmx: 4}}\n")
    with pytest.raises(ValueError, match=r"descriptors.potential: unknown setting\(s\) twojmx "
                                         r"of the snap-energy descriptor"):
        validate_config(p, "learn")


def test_committee_api_checks_hyperparameters_with_one_line():
    from molmag.models.committee import Committee

    with pytest.raises(ValueError, match=r"unknown covariant-ridge hyperparameters: degre "
                                         r"\(known: degree, env_cutoff"):
        Committee("covariant-ridge", {}, degre=2)
    with pytest.raises(ValueError, match="snap-energy hyperparameter force_weight"):
        Committee("snap-energy", {}, force_weight=-1.0)


def test_calculator_settings_are_typed(tmp_path):
    """``xtb:`` and ``ligand_field:`` of optimize/scan/md configurations are the engines'
    settings, checked when the file is read."""
    p = tmp_path / "md.yaml"
    p.write_text("time_ps: 1.0\npotential: {xtb: {acuracy: 1.0}}\n")
    with pytest.raises(ValueError, match=r"md.yaml: potential.xtb.acuracy: unknown key"):
        validate_config(p, "md")
    p.write_text("time_ps: 1.0\npotential: {xtb: {accuracy: 0.5}}\n"
                 "tensor: {ligand_field: {zeta: 500}}\n")
    _, cfg = validate_config(p, "md")
    assert cfg.potential.xtb.model_dump(exclude_unset=True) == {"accuracy": 0.5}
    assert cfg.tensor.ligand_field.zeta == 500.0
