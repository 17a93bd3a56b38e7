"""Chemistry: GFN2-xTB (tblite), molecule builders, configuration sampling, structural features."""
