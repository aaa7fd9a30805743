"""jaxvision: Keras-exact vision building blocks on jax.lax, as Flax NNX modules."""
