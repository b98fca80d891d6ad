use orbitalis::prelude::*;

struct Calculator;

#[plugin]
impl Calculator {
    #[operation]
    async fn add(&self, a: Int64, ctx: &OperationContext, b: Int64) -> Int64 {
        let _ = ctx;
        Int64(a.0 + b.0)
    }
}

fn main() {}
