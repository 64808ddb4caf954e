"""Redis backends: live job status shared by every server, and the shared cache."""
