"""MongoDB backends: the job template store and job results as documents."""
