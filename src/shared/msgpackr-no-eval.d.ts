// msgpackr ships its no-eval build without type declarations; it has the same API.
declare module "msgpackr/index-no-eval" {
  export * from "msgpackr";
}
