"""Layer 2, the data: the one whitening, the likelihood over a layout, simulated designs, and the prepared
data every fit runs on (validated layout, whitening, bucketed EM layout: :mod:`smm_ppl.data.prepared`).
The layouts themselves, with the validation of counts over items, are :mod:`smm_ppl.layouts`
(``docs/architecture.md``).
"""
