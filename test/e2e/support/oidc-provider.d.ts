// oidc-provider ships no type declarations; the e2e tests use it as an untyped module.
declare module "oidc-provider" {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const Provider: any;
  export default Provider;
}
