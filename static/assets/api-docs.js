// The API reference: Swagger UI (from npm, served at /swagger-ui/) rendering the control
// plane's own document. Signed in to the app in this browser, "Try it out" calls go with that
// login token, as the app's own calls do: in the Authorization header only.
import { token } from './api.js';

window.SwaggerUIBundle({
  url: '/api/v1/openapi.json',
  dom_id: '#reference',
  deepLinking: true,
  validatorUrl: null,
  requestInterceptor(request) {
    const current = token();
    if (current && !request.headers.Authorization) request.headers.Authorization = `Bearer ${current}`;
    return request;
  },
});
