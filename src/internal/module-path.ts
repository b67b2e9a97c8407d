import { extname } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The path of a module beside `fromUrl`, with the caller's own extension: `.ts` when
 * running from source (tsx), `.js` when running the build. Used to spawn Baton's own
 * entry points as child processes.
 */
export function siblingModule(fromUrl: string, relativeWithoutExtension: string): string {
  const ext = extname(fileURLToPath(fromUrl));
  return fileURLToPath(new URL(`${relativeWithoutExtension}${ext}`, fromUrl));
}
