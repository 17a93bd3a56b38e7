"""End-to-end campaigns (``molmag campaign co-pdms`` and ``dy-ligands``): resumable stages
(:mod:`molmag.workflows.stages`) that chain the library's labelling, training, exploration,
dynamics and generative steps and write a Markdown/HTML report."""
