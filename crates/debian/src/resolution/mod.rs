//! Choosing packages as `apt-get install --no-install-recommends` would: indexes scanned on
//! every core ([`scan`]) into the installed and available packages ([`universe`]), the
//! resolver ([`resolve`]), the install order ([`order`]) and the packages lock that records the
//! result ([`lock`]).

pub mod lock;
pub mod order;
pub mod resolve;
pub mod scan;
pub mod universe;
