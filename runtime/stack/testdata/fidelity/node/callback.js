// A callback-style handler, which nodejs24.x refuses.
export const handler = (event, context, callback) => callback(null, { statusCode: 200, body: "ran" });
