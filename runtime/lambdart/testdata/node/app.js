// CommonJS handler, async.
exports.handler = async (event, context) => ({ got: event, name: context.functionName, cjs: typeof require === "function" });
exports.cb = (event, context, callback) => { setTimeout(() => callback(null, { cb: event.n }), 1); };
exports.fails = async () => { throw new TypeError("bad input"); };
