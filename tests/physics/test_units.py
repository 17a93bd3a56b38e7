import numpy as np
import pytest

from molmag.physics.units import UNITS, convert


def test_textbook_values():
    assert convert(1.0, "cm-1", "K") == pytest.approx(1.4387769, rel=1e-7)
    assert convert(1.0, "eV", "cm-1") == pytest.approx(8065.544, rel=1e-6)
    assert convert(1.0, "Hartree", "cm-1") == pytest.approx(219474.6314, rel=1e-9)
    assert convert(1.0, "Hartree", "eV") == pytest.approx(27.211386, rel=1e-7)
    assert convert(1.0, "cm-1", "MHz") == pytest.approx(29979.2458, rel=1e-9)
    assert convert(1.0, "meV", "cm-1") == pytest.approx(8.065544, rel=1e-6)
    assert convert(1.0, "kcal/mol", "kJ/mol") == pytest.approx(4.184)


@pytest.mark.parametrize("a", list(UNITS))
@pytest.mark.parametrize("b", list(UNITS))
def test_roundtrip_and_arrays(a, b):
    x = np.array([[1.0, -2.5], [3.0, 1e-3]])
    np.testing.assert_allclose(convert(convert(x, a, b), b, a), x, rtol=1e-14)


def test_aliases_and_errors():
    assert convert(1.0, "hartree", "1/cm") == convert(1.0, "Hartree", "cm-1")
    with pytest.raises(ValueError, match="unknown energy unit 'furlong'"):
        convert(1.0, "furlong", "K")
