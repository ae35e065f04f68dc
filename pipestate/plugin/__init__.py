"""Framework integrations. Each submodule imports its framework when it is imported itself:
``import pipestate.plugin.tf`` imports TensorFlow; ``import pipestate.plugin`` imports nothing."""
