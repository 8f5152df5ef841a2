//! `rackpong crd`: print the ChaosExperiment CustomResourceDefinition (YAML)
//! for `kubectl apply -f -`.

use crate::operator::{CrdError, crd_yaml};

/// Prints the CRD.
pub fn run() -> Result<(), CrdError> {
    print!("{}", crd_yaml()?);
    Ok(())
}
