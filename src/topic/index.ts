// What the rest of the hub uses of the topic object: the class the Worker exports (wrangler.toml binds
// it as `Topic`), and the path and header of the inspector's live socket, which the Worker forwards.
export { Topic } from "./object";
export { INSPECTOR_EXPIRES_HEADER, INSPECTOR_PATH } from "./inspector";
