"""The sampling twin's pieces: the same maps as the reference layers of :mod:`srflow.flows`,
computed faster without gradients (folded and packed weights, conditioning-only terms kept
per image). A family's model assembles its twin from them
(:meth:`srflow.models.contract.FlowSR.sampling_twin`); the pipelines choose it explicitly.
"""
