//! Reading a handler method's signature: its receiver, its value and context parameters, in
//! order, and the shape of its return type.

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, PathArguments, ReturnType, Signature, Type};

/// Collects every error of an expansion, so that one build reports them all.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    pub fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn to_compile_error(&self) -> TokenStream {
        self.0.as_ref().map(syn::Error::to_compile_error).unwrap_or_default()
    }
}

/// How a context parameter takes the context the runtime owns.
#[derive(Clone, Copy)]
pub enum Pass {
    Value,
    Ref,
    RefMut,
}

/// One parameter after `&self`, with the tokens errors about it point at.
pub struct Param {
    pub kind: Kind,
    pub span: Span,
    pub tokens: TokenStream,
}

/// What a parameter is.
pub enum Kind {
    /// The input or output value.
    Value(Box<Type>),
    /// The context.
    Context(Pass),
}

/// What a method returns.
pub enum Output {
    /// Nothing.
    Unit,
    /// A value (`T`).
    Value(Box<Type>),
    /// `Result<(), E>`.
    UnitResult(Box<Type>),
    /// `Result<T, E>`, and `T`.
    ValueResult(Box<Type>, Box<Type>),
}

impl Output {
    pub fn of(ret: &ReturnType) -> Output {
        let ty = match ret {
            ReturnType::Default => return Output::Unit,
            ReturnType::Type(_, ty) => ty,
        };
        if is_unit(ty) {
            return Output::Unit;
        }
        if let Type::Path(p) = peel(ty)
            && p.qself.is_none()
            && let Some(last) = p.path.segments.last()
            && last.ident == "Result"
            && let PathArguments::AngleBracketed(args) = &last.arguments
            && let Some(GenericArgument::Type(ok)) = args.args.first()
        {
            return if is_unit(ok) {
                Output::UnitResult(ty.clone())
            } else {
                Output::ValueResult(ty.clone(), Box::new(ok.clone()))
            };
        }
        Output::Value(ty.clone())
    }

    /// The value type, if any.
    pub fn value(&self) -> Option<&Type> {
        match self {
            Output::Value(ty) | Output::ValueResult(_, ty) => Some(ty),
            Output::Unit | Output::UnitResult(_) => None,
        }
    }

    pub fn is_unit(&self) -> bool {
        matches!(self, Output::Unit | Output::UnitResult(_))
    }

    /// `value`, the method's result, as `Result<_, OperationError>`; conversion errors
    /// point at the user's return type.
    pub fn to_result(&self, value: TokenStream, krate: &syn::Path) -> TokenStream {
        match self {
            Output::Unit => quote!({
                #value;
                ::core::result::Result::Ok::<(), #krate::OperationError>(())
            }),
            Output::Value(ty) => quote_spanned!(ty.span()=>
                ::core::result::Result::Ok::<_, #krate::OperationError>(#value)
            ),
            Output::UnitResult(ty) | Output::ValueResult(ty, _) => {
                let into = quote_spanned!(ty.span()=> ::core::convert::Into::<#krate::OperationError>::into(error));
                quote!(::core::result::Result::map_err(#value, |error| #into))
            }
        }
    }
}

fn peel(ty: &Type) -> &Type {
    match ty {
        Type::Paren(p) => peel(&p.elem),
        Type::Group(g) => peel(&g.elem),
        other => other,
    }
}

fn is_unit(ty: &Type) -> bool {
    matches!(peel(ty), Type::Tuple(t) if t.elems.is_empty())
}

/// How `ty` takes a context named `context` (`OperationContext`, `SinkContext`), if it is one.
fn context_pass(ty: &Type, context: &str) -> Option<Pass> {
    let named = |ty: &Type| match peel(ty) {
        Type::Path(p) => {
            p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == context && s.arguments.is_none())
        }
        _ => false,
    };
    match peel(ty) {
        Type::Reference(r) if named(&r.elem) => Some(if r.mutability.is_some() { Pass::RefMut } else { Pass::Ref }),
        other if named(other) => Some(Pass::Value),
        _ => None,
    }
}

/// What a role expects of a method's signature.
pub struct Rules {
    /// The methods, for messages: "an #[operation] method".
    pub method: &'static str,
    /// The context type's name.
    pub context: &'static str,
    /// What the value parameter is, for messages: "input".
    pub value: &'static str,
}

/// Checks what every handler needs (`async fn`, `&self`, no generics) and reads its
/// parameters; problems go to `errors`.
pub fn params(sig: &Signature, rules: &Rules, errors: &mut Errors) -> Vec<Param> {
    let method = rules.method;
    if sig.asyncness.is_none() {
        errors.at(sig.fn_token, format!("{method} must be an `async fn`: the runtime runs it as a future"));
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.at(unsafety, format!("{method} cannot be `unsafe`: the runtime calls it"));
    }
    if !sig.generics.params.is_empty() {
        errors.at(&sig.generics, format!("{method} cannot be generic: its types declare the operation's schemas"));
    }
    receiver(sig, method, errors);
    let mut out: Vec<Param> = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(arg) = arg else { continue };
        let ty = &*arg.ty;
        if let Type::ImplTrait(_) = peel(ty) {
            errors.at(ty, format!("{method} cannot take `impl Trait`: name the {} type", rules.value));
            continue;
        }
        let kind = match context_pass(ty, rules.context) {
            Some(pass) => {
                if out.iter().any(|p| matches!(p.kind, Kind::Context(_))) {
                    errors.at(arg, format!("{method} takes at most one {}", rules.context));
                }
                Kind::Context(pass)
            }
            None => {
                if out.iter().any(|p| matches!(p.kind, Kind::Value(_))) {
                    errors.at(
                        arg,
                        format!(
                            "{method} takes at most one {value} besides its {context}; this is a second {value} \
                             (put both values in one message type)",
                            value = rules.value,
                            context = rules.context,
                        ),
                    );
                }
                Kind::Value(Box::new(ty.clone()))
            }
        };
        out.push(Param { kind, span: arg.span(), tokens: arg.to_token_stream() });
    }
    out
}

fn receiver(sig: &Signature, method: &str, errors: &mut Errors) {
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() && r.colon_token.is_none() => {}
        Some(FnArg::Receiver(r)) => {
            errors.at(r, format!("{method} takes `&self`: the runtime shares the value between concurrent runs"))
        }
        _ => errors.push(syn::Error::new(
            sig.paren_token.span.join(),
            format!("{method} takes `&self` first: it is called on the value given to `start`"),
        )),
    }
}

/// The call of `method` on `this` (a `&Self`) with `value` and `context` in the method's
/// order, `.await`ed.
pub fn call(
    method: &syn::Ident,
    this: &TokenStream,
    params: &[Param],
    value: &TokenStream,
    context: &TokenStream,
) -> TokenStream {
    let args = params.iter().map(|p| match p.kind {
        Kind::Value(_) => quote_spanned!(p.span=> #value),
        Kind::Context(Pass::Value) => quote_spanned!(p.span=> #context),
        Kind::Context(Pass::Ref) => quote_spanned!(p.span=> &#context),
        Kind::Context(Pass::RefMut) => quote_spanned!(p.span=> &mut #context),
    });
    quote_spanned!(method.span()=> Self::#method(#this, #(#args),*).await)
}

/// Statements requiring `Data` of the value types, each spanned on its type, so that a
/// type that is no `Data` is reported where the user wrote it.
pub fn data_checks<'a>(types: impl IntoIterator<Item = &'a Type>, krate: &syn::Path) -> TokenStream {
    types
        .into_iter()
        .map(|ty| {
            let path = quote_spanned!(ty.span()=> <#ty as #krate::Data>::spec);
            quote!(let _ = #path;)
        })
        .collect()
}

/// The value parameter's type, if any.
pub fn value_type(params: &[Param]) -> Option<&Type> {
    params.iter().find_map(|p| match &p.kind {
        Kind::Value(ty) => Some(&**ty),
        Kind::Context(_) => None,
    })
}

/// The patterns and value type of the closure that receives a value and a context and
/// passes them on to the method: `value` and `context` where the method takes them, `_`
/// where not; `absent` is the value type when the method takes none.
pub fn closure_params(
    params: &[Param],
    value: &TokenStream,
    context: &TokenStream,
    absent: TokenStream,
) -> (TokenStream, TokenStream, TokenStream) {
    let mut value_param = (quote!(_), absent);
    let mut context_pattern = quote!(_);
    for p in params {
        match &p.kind {
            Kind::Value(ty) => value_param = (value.clone(), ty.to_token_stream()),
            Kind::Context(Pass::RefMut) => context_pattern = quote!(mut #context),
            Kind::Context(_) => context_pattern = context.clone(),
        }
    }
    (value_param.0, value_param.1, context_pattern)
}
