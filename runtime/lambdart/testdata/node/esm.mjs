// ES module handler.
export const handler = async (event) => ({ esm: true, n: event.n, remaining: 0 });
