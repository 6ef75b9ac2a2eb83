"""The bundled reproduction of the paper's experiment: plan, runs, seeds, summary tables and sentences, verification."""
