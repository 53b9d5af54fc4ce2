//! What `liftoff deploy` needs besides the image: the DAG bundle tarball ([`bundle`]).

pub mod bundle;
