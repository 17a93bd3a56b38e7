"""ORCA: read its outputs into molmag labels and write the seeds' reference inputs."""
