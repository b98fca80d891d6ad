use orbitalis::prelude::*;

struct Meter;

#[plugin]
impl Meter {
    #[operation(period = "1s")]
    async fn power(&self, scale: Float64) -> Float64 {
        Float64(9.5 * scale.0)
    }
}

fn main() {}
