use orbitalis::prelude::*;

struct Echo;

#[plugin]
impl Echo {
    #[operation]
    async fn echo<T: Data>(&self, value: T) -> T {
        value
    }
}

fn main() {}
