//! What `#[plugin]` and `#[core]` share: reading the impl block, taking the inner attributes
//! of its methods, and writing the trait impl.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, ImplItemFn, Item, ItemImpl, Path};

use crate::args::{self, Inner};
use crate::method::Errors;

/// The role macros' common frame.
pub struct Role {
    /// The attribute: `plugin`.
    pub attribute: &'static str,
    /// The trait it implements: `Plugin`.
    pub trait_name: &'static str,
}

impl Role {
    /// The impl block `item` is, or an error at what it is instead.
    pub fn impl_block(&self, item: TokenStream) -> syn::Result<ItemImpl> {
        let (attribute, trait_name) = (self.attribute, self.trait_name);
        let wrong = |span: Span, what: &str| {
            syn::Error::new(
                span,
                format!(
                    "#[{attribute}] goes on an inherent impl block (`#[{attribute}] impl MyType {{ ... }}`), \
                     not on {what}"
                ),
            )
        };
        let item: Item = syn::parse2(item)?;
        match item {
            Item::Impl(block) => match &block.trait_ {
                None => Ok(block),
                Some((_, path, _)) => Err(syn::Error::new_spanned(
                    path,
                    format!(
                        "#[{attribute}] writes the `{trait_name}` impl itself: put it on an inherent impl block \
                         (`#[{attribute}] impl MyType {{ ... }}`), not on a trait impl"
                    ),
                )),
            },
            Item::Struct(s) => Err(wrong(s.ident.span(), "a struct")),
            Item::Enum(e) => Err(wrong(e.ident.span(), "an enum")),
            Item::Fn(f) => Err(wrong(f.sig.ident.span(), "a function")),
            Item::Trait(t) => Err(wrong(t.ident.span(), "a trait")),
            Item::Mod(m) => Err(wrong(m.ident.span(), "a module")),
            other => Err(wrong(other.span(), "this item")),
        }
    }

    /// `errors` with the item, for an item that is not an impl block: the item stays, so
    /// nothing else fails for want of it.
    pub fn refuse(error: syn::Error, item: TokenStream) -> TokenStream {
        let error = error.to_compile_error();
        quote!(#error #item)
    }

    /// The expansion: the block with its inner attributes marked, and the trait impl with
    /// `body`; with errors, an empty trait impl instead, so that the user's code using the
    /// type reports nothing more.
    pub fn finish(&self, block: &ItemImpl, krate: &Path, body: TokenStream, errors: Errors) -> TokenStream {
        let (impl_generics, _, where_clause) = block.generics.split_for_impl();
        let self_ty = &block.self_ty;
        let trait_name = syn::Ident::new(self.trait_name, Span::call_site());
        let body = if errors.is_empty() { body } else { TokenStream::new() };
        let errors = errors.to_compile_error();
        quote! {
            #block

            #[automatically_derived]
            #[#krate::__private::async_trait]
            impl #impl_generics #krate::#trait_name for #self_ty #where_clause {
                #body
            }

            #errors
        }
    }
}

/// Our attributes on `f`, marked in place; the returned copies keep their arguments.
pub fn take_inner(f: &mut ImplItemFn) -> Vec<(Inner, Attribute)> {
    let mut found = Vec::new();
    for attr in &mut f.attrs {
        if let Some(kind) = Inner::of(attr) {
            found.push((kind, attr.clone()));
            args::mark(attr);
        }
    }
    found
}

/// The name an item declares under, given or from the method (raw identifiers unraw'd).
pub fn name_of(given: Option<&syn::LitStr>, method: &syn::Ident) -> syn::LitStr {
    use syn::ext::IdentExt;
    match given {
        Some(lit) => lit.clone(),
        None => syn::LitStr::new(&method.unraw().to_string(), method.span()),
    }
}

/// Reports a second item of the same `name` in one impl.
pub fn check_unique(
    seen: &mut Vec<(String, syn::Ident)>,
    name: &syn::LitStr,
    method: &syn::Ident,
    what: &str,
    errors: &mut Errors,
) {
    let value = name.value();
    match seen.iter().find(|(n, _)| *n == value) {
        Some((_, first)) => errors.push(syn::Error::new(
            name.span(),
            format!("{what} `{value}` is declared twice in this impl: by `{first}` and by `{method}`"),
        )),
        None => seen.push((value, method.clone())),
    }
}
