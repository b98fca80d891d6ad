use orbitalis::prelude::*;

struct Lower;

#[plugin]
impl Plugin for Lower {}

fn main() {}
