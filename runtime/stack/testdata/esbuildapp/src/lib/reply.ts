import greeting from "./greeting.txt";

export enum Source {
  Bundle = "bundle",
  Mapped = "mapped",
}

export interface Reply {
  text: string;
  module: string;
  frame: Source;
  minified: boolean;
}

// namedForMinify keeps its name only in an unminified bundle.
function namedForMinify(): string {
  return namedForMinify.name;
}

// reply says what the client sent and how the bundle that answers was
// built: the file it runs from, whether a stack frame maps back to the
// TypeScript source (Sourcemap, with NODE_OPTIONS=--enable-source-maps),
// whether local names were minified.
export function reply(said: string, file: string): Reply {
  const stack = new Error().stack ?? "";
  return {
    text: `${greeting.trim()} ${said}`,
    module: file,
    frame: /src\/lib\/reply\.ts:\d+/.test(stack) ? Source.Mapped : Source.Bundle,
    minified: namedForMinify() !== "namedForMinify",
  };
}
