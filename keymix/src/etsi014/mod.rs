//! ETSI GS QKD 014 client and KME simulator.
