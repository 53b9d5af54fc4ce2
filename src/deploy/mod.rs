//! What `liftoff deploy` needs besides the image: the DAG bundle tarball ([`bundle`]) and the
//! self-hosted deployment's store of bundles and deploy records ([`store`]).

pub mod bundle;
pub mod dagcheck;
pub mod store;
