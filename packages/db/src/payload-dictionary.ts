/**
 * The preset dictionary of stored payload format 1 (`event-payload.ts`):
 * deflate starts with these bytes in its window, so the first occurrence
 * of a protocol key in an event costs a back-reference instead of its
 * letters. Small events gain most (a 5 KB error: 1,660 → 1,240 bytes).
 *
 * What it holds: the event payload's field names and common values from
 * the protocol (develop.sentry.dev/sdk/data-model/event-payloads/ and its
 * interface pages: exception, stacktrace, breadcrumbs, contexts, request,
 * user, sdk, debug_meta) and the default integration names of the Node,
 * browser and Python SDKs, ordered roughly least to most common (deflate
 * codes nearer distances more cheaply). Nothing in it comes from one
 * capture's values (ids, paths, messages).
 *
 * FROZEN: stored rows are decoded with exactly these bytes. Changing one
 * character makes every row of format 1 unreadable; a better dictionary is
 * a new format number next to this one. A test pins its SHA-256.
 */
export const PAYLOAD_DICTIONARY_1 = [
  '"modules":{},"extra":{},"fingerprint":["{{ default }}"],"transaction":"","culprit":"","dist":"","server_name":"","logger":"",',
  '"debug_meta":{"images":[{"type":"sourcemap","code_file":"","debug_id":""}]},',
  '"request":{"url":"","method":"GET","query_string":"","data":"","cookies":"","env":{},"headers":{"host":"","user-agent":"","accept":"*/*","accept-encoding":"gzip, deflate, br","accept-language":"","content-type":"application/json","connection":"keep-alive"}},',
  '"user":{"id":"","email":"","username":"","ip_address":"{{auto}}","geo":{}},',
  '"sdk":{"name":"sentry.python","version":"","integrations":["argv","atexit","dedupe","excepthook","logging","modules","stdlib","threading","aiohttp","django","flask","fastapi","starlette","sqlalchemy","redis","celery"],"packages":[{"name":"pypi:sentry-sdk","version":""}]},',
  '"sdk":{"name":"sentry.javascript.browser","version":"","integrations":["InboundFilters","FunctionToString","BrowserApiErrors","Breadcrumbs","GlobalHandlers","LinkedErrors","Dedupe","HttpContext","BrowserSession"],"packages":[{"name":"npm:@sentry/browser","version":""}]},',
  '"sdk":{"name":"sentry.javascript.node","version":"","integrations":["InboundFilters","FunctionToString","LinkedErrors","RequestData","Console","Http","NodeFetch","OnUncaughtException","OnUnhandledRejection","ContextLines","LocalVariables","Context","ChildProcess","ProcessSession","Modules"],"packages":[{"name":"npm:@sentry/node","version":""}]},',
  '"contexts":{"trace":{"trace_id":"","span_id":"","parent_span_id":"","op":"","status":""},',
  '"runtime":{"name":"node","version":"v"},"app":{"app_start_time":"","app_memory":},',
  '"os":{"kernel_version":"","name":"Linux","version":"","build":""},',
  '"device":{"boot_time":"","arch":"x64","memory_size":,"free_memory":,"processor_count":,"cpu_description":"","processor_frequency":},',
  '"culture":{"locale":"en-US","timezone":"UTC"},"cloud_resource":{}},',
  '"tags":{},"environment":"production","release":"","platform":"javascript","platform":"python","platform":"node","level":"warning","level":"info","level":"error",',
  '"breadcrumbs":{"values":[{"timestamp":,"category":"http","type":"http","level":"info","data":{"method":"GET","url":"","status_code":200}},',
  '{"timestamp":,"category":"console","level":"log","message":""}]},',
  '"message":{"formatted":"","message":"","params":[]},',
  '"threads":{"values":[{"id":,"crashed":true,"current":true,"main":true,"stacktrace":{}}]},',
  '"exception":{"values":[{"type":"TypeError","type":"Error","value":"","module":"",',
  '"mechanism":{"type":"generic","type":"onuncaughtexception","type":"onunhandledrejection","handled":false,"handled":true,"synthetic":false},',
  '"stacktrace":{"frames":[{"filename":"node:internal/","module":"","function":"","lineno":,"colno":,"in_app":false},',
  '{"filename":"","abs_path":"","module":"","function":"","lineno":,"colno":,"in_app":true,"pre_context":["","",""],"context_line":"","post_context":["","",""]}]}}]},',
  '"event_id":"","timestamp":',
].join("");
