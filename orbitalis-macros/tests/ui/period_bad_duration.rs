use orbitalis::prelude::*;

struct Meter;

#[plugin]
impl Meter {
    #[operation(period = "1 fortnight")]
    async fn power(&self) -> Float64 {
        Float64(9.5)
    }
}

fn main() {}
